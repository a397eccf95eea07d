"""diffsys.learned"""
