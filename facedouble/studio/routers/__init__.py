"""One router per studio view (FastAPI's "bigger applications" layout); the logic lives in the package modules."""
