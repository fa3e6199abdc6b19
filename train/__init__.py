"""Training side (TensorFlow, tf_keras). Import-light: heavy modules import TensorFlow only when used."""

from nsl.env import prepare_tensorflow

prepare_tensorflow()
