"""diffsys.chiplet"""
