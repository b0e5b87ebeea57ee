"""The under-provisioning experiment: servers needed for a latency target, per trace."""

from servetrace.provision.capacity import Requests, min_servers
from servetrace.provision.model import latencies
from servetrace.settings import ServingModel
from servetrace.provision.naive import naive_requests
from servetrace.provision.run import provision_result, provision_traces

__all__ = ["Requests", "ServingModel", "latencies", "min_servers", "naive_requests", "provision_result",
           "provision_traces"]
