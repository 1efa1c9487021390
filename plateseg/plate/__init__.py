"""The plate: how instruments name their files, and the layout of wells."""
