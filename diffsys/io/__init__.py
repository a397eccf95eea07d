"""diffsys.io"""
