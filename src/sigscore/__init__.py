"""sigscore: IL-6/STAT3 sorafenib-resistance programme scoring (research use only)."""

__version__ = "0.1.0"
