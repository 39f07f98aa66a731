"""processors/genai."""
