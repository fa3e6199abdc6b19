"""Training side (TensorFlow, tf_keras). Import-light: heavy modules import TensorFlow only when used."""

from nsl.env import prepare_tensorflow

prepare_tensorflow()


def _register_tfrecords() -> None:
    from nsl.dataset import register_record_extractor
    from nsl.train.tfrecords import extract_tfrecords

    register_record_extractor(extract_tfrecords)


_register_tfrecords()
