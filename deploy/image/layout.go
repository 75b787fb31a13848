package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations of the layout's index.json entry: the tag, which skopeo's
// oci:DIR:TAG and crane name, and the whole reference, which containerd's
// import (docker load, nerdctl, ctr) names the image by.
const (
	RefNameAnnotation   = "org.opencontainers.image.ref.name"
	ImageNameAnnotation = "io.containerd.image.name"
)

// WriteLayout writes the images, one per platform, as an OCI image layout
// at dir: index.json names one image manifest (one image) or one image
// index (several), tagged r.Version. dir must not exist, be empty, or hold
// an OCI image layout, which is replaced.
func WriteLayout(dir string, r Release, imgs ...v1.Image) error {
	if len(imgs) == 0 {
		return errors.New("no image to write")
	}
	ref, err := name.NewTag(Name+":"+r.Version, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("version %q: %w", r.Version, err)
	}
	if err := CheckLayoutDir(dir); err != nil {
		return err
	}
	if err := clearLayout(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	ann := layout.WithAnnotations(map[string]string{RefNameAnnotation: ref.TagStr(), ImageNameAnnotation: ref.String()})
	if len(imgs) == 1 {
		pl, err := platform(imgs[0])
		if err != nil {
			return err
		}
		return p.AppendImage(imgs[0], ann, layout.WithPlatform(*pl))
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		pl, err := platform(img)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: pl}})
	}
	return p.AppendIndex(idx, ann)
}

// WriteTarball writes img as a `docker load` tarball at file, tagged
// Name:r.Version.
func WriteTarball(file string, r Release, img v1.Image) error {
	ref, err := name.NewTag(Name+":"+r.Version, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("version %q: %w", r.Version, err)
	}
	return tarball.WriteToFile(file, ref, img)
}

func platform(img v1.Image) (*v1.Platform, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return &v1.Platform{OS: cf.OS, Architecture: cf.Architecture}, nil
}

// CheckLayoutDir says whether WriteLayout may write at dir: it does not
// exist, is an empty folder, or holds an OCI image layout (an oci-layout
// file, index.json, blobs/) and nothing else.
func CheckLayoutDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	known := map[string]bool{"oci-layout": true, "index.json": true, "blobs": true}
	for _, e := range ents {
		if !known[e.Name()] {
			return fmt.Errorf("%s holds %s: not an OCI image layout; give an empty or new folder", dir, e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("%s is not empty and has no oci-layout file; give an empty or new folder", dir)
	}
	return nil
}

// clearLayout empties dir, which CheckLayoutDir accepted.
func clearLayout(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
