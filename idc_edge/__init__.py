"""idc-edge: live invasive ductal carcinoma (IDC) detection on breast histology, on the device."""

__version__ = "0.1.0"
