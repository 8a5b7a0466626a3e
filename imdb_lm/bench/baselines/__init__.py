"""What a user would otherwise write, each kept faithful to its usual form (see each module)."""
