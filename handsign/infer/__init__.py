"""Running a saved model: the torch and ONNX Runtime runners, the landmark route for real photos
(hand_route), `predict`, `export` (to ONNX) and `evaluate` (accuracy on a data set's split)."""
