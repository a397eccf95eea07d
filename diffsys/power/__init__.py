"""diffsys.power"""
