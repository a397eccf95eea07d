"""diffsys.optimize"""
