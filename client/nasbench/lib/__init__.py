"""Drop-in replacements for the original ``nasbench.lib`` modules (pure, no TensorFlow)."""
