"""Database backends of our own: Django's, with the changes explained in each module."""
