"""goal stage."""
