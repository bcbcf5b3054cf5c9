from twister.workflows.inspect import InspectUrlWorkflow
from twister.workflows.job import DownloadJobWorkflow

__all__ = ["DownloadJobWorkflow", "InspectUrlWorkflow"]
