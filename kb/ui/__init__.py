"""The Streamlit app's pages (one module per page) and the parts they share (``common``, ``viewer``).

Pages call only ``kb.service.KnowledgeBase`` methods, the same ones the CLI uses.
"""
