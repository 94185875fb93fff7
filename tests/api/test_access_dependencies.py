"""The access checks routes declare (app/api/deps.py: ProjectMember, ProjectLabeller, ProjectReviewer,
ProjectAdmin and ``require`` behind them): which roles each admits, and what the others hear."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from app.api.deps import require
from app.db import session_scope
from app.services import projects as project_service
from app.services.auth import create_user
from app.services.errors import Forbidden, NotFound

ADMITTED = {
    "view": {"admin", "reviewer", "annotator", "viewer"},
    "label": {"admin", "reviewer", "annotator"},
    "review": {"admin", "reviewer"},
    "admin": {"admin"},
}


def test_each_need_admits_the_roles_it_names_and_refuses_the_rest(settings):
    with session_scope(settings.database_url) as s:
        project = project_service.create_project(s, "access", ["a", "b"])
        users = {"admin": create_user(s, "boss", "password-123", is_admin=True)}
        for role in ("reviewer", "annotator", "viewer"):
            users[role] = create_user(s, role, "password-123")
            project_service.add_member(s, project, role, role)
        outsider = create_user(s, "outsider", "password-123")
        for need, admitted in ADMITTED.items():
            for role, user in users.items():
                if role in admitted:
                    access = require(s, user, project.id, need)
                    assert (access.user, access.project, access.role) == (user, project, role)
                else:
                    with pytest.raises((Forbidden, HTTPException)) as refused:
                        require(s, user, project.id, need)
                    assert refused.value.status_code == 403, (need, role)
            # Someone who is not a member may not learn that the project exists.
            if need != "admin":
                with pytest.raises(NotFound):
                    require(s, outsider, project.id, need)
        # An admin-only action is refused to a non-admin before the project is looked up (as AdminUser did).
        with pytest.raises(HTTPException) as refused:
            require(s, outsider, project.id + 1000, "admin")
        assert refused.value.status_code == 403
        with pytest.raises(NotFound):
            require(s, users["admin"], project.id + 1000, "admin")
