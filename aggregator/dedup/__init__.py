"""Pure dedup: text -> shingles -> signatures -> LSH candidates -> verified groups.

Nothing here touches the database or the clock; `store` persists signatures and the
pipeline feeds the index. See docs/design.md, "Dedup", for the levels.
"""
