"""trident on Kubernetes: `KubeCluster` (cluster.py), the objects it creates (objects.py)
and the Kubernetes API calls it makes (api.py, through the optional ``kubernetes``
client library)."""
