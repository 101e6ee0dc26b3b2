"""The silver layer: bronze validated with PyDeequ, typed, de-duplicated and conformed (rules and
pure transforms in ``lakehouse.quality``; the stage that reads and writes the tables in ``stage``)."""
