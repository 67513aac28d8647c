"""Clinical terminologies every stage shares (ICD-10-CM), on the lowest floor: no stage imports."""
