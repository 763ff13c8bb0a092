"""AMP features, robot motion → feature conversion, dataset files, merge and sampling."""
