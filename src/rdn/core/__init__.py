"""The shared kernel every domain uses; it imports no domain."""
