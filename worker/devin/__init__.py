"""The Devin API seam: the HTTP client and the response models."""
