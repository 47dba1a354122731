"""PyG's GNNExplainer and PGExplainer as reference explainers for dig's xgraph track."""
