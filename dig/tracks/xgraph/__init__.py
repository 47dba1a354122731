"""The explainability track (CLI id ``xgraph``): explainers of GNN predictions, scored against ground truth."""
