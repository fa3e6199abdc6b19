"""Device side: hand tracking, cropping and classification. Never imports TensorFlow."""
