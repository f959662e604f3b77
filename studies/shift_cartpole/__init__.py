"""The dynamics-shift study: README.md beside this file."""
