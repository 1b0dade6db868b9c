"""RL with verifiable rewards: TRL GRPOTrainer scored by the shared verifier registry."""
