"""Hand landmarks: the route that reads real photos.

A photo's hand is found by MediaPipe's hand model (21 points, handedness); the points become
features that ignore where the hand is, how big it is and which hand it is (`features`); a small
MLP trained on real photos of several people reads the letter from them (`train`, `predict`).

    landmarks.py  MediaPipe, offline: decoded image -> Hand (21 points in pixels) or None
    features.py   Hand -> feature vector (NumPy only; the same for training, predict, serve, ONNX)
    cache.py      per-file landmark cache keyed by content, safe against kills
    data.py       an image folder (ROOT/<label>/*.jpg) -> landmarks, person ids, detection report
    train.py      the `hands-asl` recipe: config, training, leave-one-person-out evaluation
    route.py      a loaded landmark model (torch or ONNX Runtime) and its fusion with a pixel model

Its bundle (the bundled `asl`: the landmark model + the pixel model it names, its model card) is
handsign/bundle/hands.py.

The route each picture takes is chosen in `handsign.predict.Predictor.predict_image`.
"""
