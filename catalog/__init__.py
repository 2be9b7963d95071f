"""The catalog: the one API through which the app and the models reach data."""
