"""The web application's pages, one module an area; each defines ``routes``."""
