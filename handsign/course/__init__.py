"""What exists only because of NVIDIA's Fundamentals of Deep Learning course.

`reproduce.py` runs the course's five stages (`stages.py` holds the stages, `reproduce.py` the driver
and its summary), `report_html.py` renders the report, `lessons.py` writes its texts,
`course_import.py` reads the course's `torch.save(model)` files safely, `photo_eval.py` and
`real_photos.py` measure the course's models on photo-like and real pictures.

The core library (handsign/*.py) never imports from this package; this package imports the core.
"""
