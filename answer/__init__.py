"""Cited answers: evidence selection, generated answers, claim checking and abstention (hits → answer)."""
