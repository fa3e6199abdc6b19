"""Export side: Keras run -> model bundle (TFLite and ONNX, float and int8) with an accuracy gate."""

from nsl.env import prepare_tensorflow

prepare_tensorflow()
