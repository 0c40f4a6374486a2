"""Hand landmarks: the route that reads real photos.

A photo's hand is found by MediaPipe's hand model (21 points, handedness); the points become
features that ignore where the hand is, how big it is and which hand it is (`features`); a small
MLP trained on real photos of several people reads the letter from them (handsign.train.landmarks trains it
through the one training loop; handsign.infer.hand_route runs it).

    landmarks.py  MediaPipe, offline: decoded image -> Hand (21 points in pixels) or None
    features.py   Hand -> feature vector (NumPy only; the same for training, predict, serve, ONNX)
    augment.py    augmentation in landmark space (turns, stretch, jitter)
    cache.py      per-file landmark cache keyed by content, safe against kills
    photos.py     a photo folder (ROOT/<label>/*.jpg) -> landmarks, person ids, detection report; LandmarkSet
    tasks_bundle.py  the page's hand model (MediaPipe Tasks' hand_landmarker.task) from the wheel's .tflite files

Its bundle (the bundled `asl`: the landmark model + the pixel model it names, its model card) is
handsign/bundle/hands.py.

The route each picture takes is chosen in `handsign.infer.predict.Predictor.predict_image`.
"""
