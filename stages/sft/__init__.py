"""Supervised fine-tuning: TRL SFTTrainer on chat data, loss on assistant tokens only."""
