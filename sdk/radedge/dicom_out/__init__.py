"""DICOM-native results: what a PACS and a radiologist's viewer understand (the IHE AI Results
profile's set), made through highdicom from a result on a DICOM image.

- ``seg``: a Segmentation per segmentation head, at the source image's geometry;
- ``sr``: a Structured Report, TID 1500 Measurement Report, of every model's findings;
- ``gsps``: a Grayscale Softcopy Presentation State drawing them over the original image;
- ``kos``: a Key Object Selection referencing a flagged image;
- ``common``: the source, the algorithm identification, equipment, codes and UIDs they share.
"""
