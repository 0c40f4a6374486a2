"""Image preparation: the one preprocessing definition that training, evaluation, predict, the server and
ONNX share (preprocess, with the hand crop in crop), and the batched training augmentation (augment)."""
