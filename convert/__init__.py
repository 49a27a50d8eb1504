"""Quantization of the trained IDC classifier for the device.

Modules, one job each:

- :mod:`convert.kerasenv` — imports TensorFlow, Keras 3, tf_keras and tfmot in a working order;
- :mod:`convert.data` — representative / fine-tuning patches (training patients) and validation patients;
- :mod:`convert.tflite` — float32, float16 and dynamic-range int8 TFLite;
- :mod:`convert.ptq` — full-integer post-training quantization;
- :mod:`convert.qat` — quantization-aware fine-tuning through tf_keras, then full-integer conversion;
- :mod:`convert.variants` — the variants and the ``variants.json`` manifest;
- :mod:`convert.evaluate` — metrics, agreement and latency through the runtime's ``PatchClassifier``;
- :mod:`convert.select` — which int8 variant ships, target checks;
- :mod:`convert.report` / :mod:`convert.charts` — Markdown, JSON and PNG report;
- :mod:`convert.context` — the field context's threshold (windows read with their neighbours);
- :mod:`convert.pipeline` — one run, step by step; :mod:`convert.existing` — re-evaluate converted or shipped models;
- :mod:`convert.ship` — copy the chosen pair into ``idc_edge/models``;
- ``python -m convert`` — the command line (see ``convert/README.md``).

Importing this package imports no TensorFlow; the submodules that need it import it lazily.
"""
