"""Persona generators behind one small interface (``PersonaGenerator``)."""
