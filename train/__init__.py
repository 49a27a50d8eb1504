"""Training pipeline for idc-edge's IDC patch classifier (``python -m train --help``)."""
