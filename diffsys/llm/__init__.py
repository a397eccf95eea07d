"""diffsys.llm"""
