"""Preference tuning: TRL DPOTrainer with Tulu 3's length-normalized DPO loss."""
