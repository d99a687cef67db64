"""Data modules (plain objects, ``base``); ``lightning`` shows one to Lightning's Trainer."""
