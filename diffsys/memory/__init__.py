"""diffsys.memory"""
