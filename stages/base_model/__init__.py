"""base_model: register an external HF-format model directory as a source artifact."""
