// Who is signed in and which project is open: the state the shell (app.js) and the views share.
// A module of its own so that views need not import the shell that imports them.
import { get } from "./api.js";

export const state = { me: null, project: null };

/** The project, from a cache of 5 s unless ``force`` (a view that changed it asks again). */
export async function loadProject(pid, force = false) {
  if (!force && state.project && state.project.id === pid && Date.now() - state.project._at < 5000) return state.project;
  const p = await get(`/projects/${pid}`);
  p._at = Date.now();
  state.project = p;
  return p;
}
