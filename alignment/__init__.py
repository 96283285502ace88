"""Alignment with the WHO frameworks: the frameworks as data, passage tagging and the coverage map."""
