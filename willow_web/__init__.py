"""Willow's browser app: the Python half of the web client, run in Pyodide inside a Web Worker."""
