"""diffsys.topologies"""
